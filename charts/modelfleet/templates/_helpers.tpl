{{/* Release-scoped name of the operator's objects. */}}
{{- define "modelfleet.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "modelfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "modelfleet.labels" -}}
{{ include "modelfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: modelfleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "modelfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default "modelfleet-operator" .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* REGISTRY/REPOSITORY:TAG or @DIGEST; call with (dict "registry" R "repository" P "tag" T "digest" D "root" $). */}}
{{- define "modelfleet.imageRef" -}}
{{- $prefix := ternary (printf "%s/" .registry) "" (ne .registry "") -}}
{{- if .digest -}}
{{- printf "%s%s@%s" $prefix .repository .digest -}}
{{- else -}}
{{- printf "%s%s:%s" $prefix .repository (default .root.Chart.AppVersion .tag) -}}
{{- end -}}
{{- end -}}

{{- define "modelfleet.image" -}}
{{- include "modelfleet.imageRef" (dict "registry" .Values.image.registry "repository" .Values.image.repository "tag" .Values.image.tag "digest" .Values.image.digest "root" .) -}}
{{- end -}}

{{- define "modelfleet.runtimeImage" -}}
{{- $image := index .root.Values.runtimeImages .name -}}
{{- include "modelfleet.imageRef" (dict "registry" .root.Values.image.registry "repository" $image.repository "tag" $image.tag "digest" "" "root" .root) -}}
{{- end -}}

{{/* Peering with more than one replica: kopf pauses every replica but the highest-priority one. */}}
{{- define "modelfleet.peering" -}}
{{- gt (int .Values.replicas) 1 -}}
{{- end -}}

{{/*
Rules the operator needs wherever it manages resources: namespaced kinds only, so the same list
serves the ClusterRole (cluster-wide) and each Role (watchNamespaces).
*/}}
{{- define "modelfleet.namespacedRules" -}}
# The three kinds: kopf patches them (finalizer, progress annotations) and writes their status.
- apiGroups: ["modelfleet.io"]
  resources: ["trainingjobs", "modeldeployments", "benchmarksweeps"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["modelfleet.io"]
  resources: ["trainingjobs/status", "modeldeployments/status", "benchmarksweeps/status"]
  verbs: ["get", "patch", "update"]
# Owner references with blockOwnerDeletion need update on the owner's finalizers.
- apiGroups: ["modelfleet.io"]
  resources: ["trainingjobs/finalizers", "modeldeployments/finalizers", "benchmarksweeps/finalizers"]
  verbs: ["update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# Pods are read to explain scheduling and failures, and deleted to restart a stuck worker.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps", "serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# Per-job Roles let rank 0 patch only its own progress ConfigMap; the operator holds that
# permission itself (configmaps above), so it needs neither bind nor escalate.
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# Fallback when KEDA is absent.
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
{{- end -}}

{{/* Cluster-scoped reads: detecting optional integrations (KEDA, Gateway API, Prometheus Operator). */}}
{{- define "modelfleet.detectionRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- end -}}
