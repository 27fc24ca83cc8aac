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

{{/* A runtime image ({repository, tag}) under the operator image's registry. */}}
{{- define "modelfleet.runtimeImage" -}}
{{- include "modelfleet.imageRef" (dict "registry" .root.Values.image.registry "repository" .image.repository "tag" .image.tag "digest" "" "root" .root) -}}
{{- end -}}

{{/* MODELFLEET_CAPACITY_MAX_NODES from capacityManager.maxNodes: SIZE=COUNT,... in key order. */}}
{{- define "modelfleet.maxNodes" -}}
{{- $items := list -}}
{{- range $size, $count := . -}}
{{- $items = append $items (printf "%s=%d" $size (int $count)) -}}
{{- end -}}
{{- join "," $items -}}
{{- end -}}

{{/* Peering with more than one replica: kopf pauses every replica but the highest-priority one. */}}
{{- define "modelfleet.peering" -}}
{{- gt (int .Values.replicas) 1 -}}
{{- end -}}

{{/*
Rules the operator needs wherever it manages resources: namespaced kinds only, so the same list
serves the ClusterRole (cluster-wide) and each Role (watchNamespaces). Each verb is one the operator
uses (modelfleet_operator.kube through the controllers, or kopf); tests/cluster/test_chart_install.py
runs the operator with this chart's ServiceAccount. The operator reads through kopf's watches (list,
watch), never with get; it writes children by server-side apply (patch, and create for an apply that
creates the object) and prunes them (delete). Neither it nor kopf uses update (PUT).
*/}}
{{- define "modelfleet.namespacedRules" -}}
# kopf watches the three kinds and patches them (only to remove the finalizer an earlier release put on
# them); a TrainingJob past its TTL is deleted; a BenchmarkSweep applies the ModelDeployments its
# targets expand to and prunes them once measured.
- apiGroups: ["modelfleet.io"]
  resources: ["trainingjobs"]
  verbs: ["list", "watch", "patch", "delete"]
- apiGroups: ["modelfleet.io"]
  resources: ["modeldeployments"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# BenchmarkSweeps: a ModelDeployment's canary analysis applies and prunes its own.
- apiGroups: ["modelfleet.io"]
  resources: ["benchmarksweeps"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["modelfleet.io"]
  resources: ["trainingjobs/status", "modeldeployments/status", "benchmarksweeps/status"]
  verbs: ["patch"]
# Children carry owner references with blockOwnerDeletion, which the OwnerReferencesPermissionEnforcement
# admission plugin allows only to whoever may update the owner's finalizers.
- apiGroups: ["modelfleet.io"]
  resources: ["trainingjobs/finalizers", "modeldeployments/finalizers", "benchmarksweeps/finalizers"]
  verbs: ["update"]
# Worker and benchmark Jobs: watched (label-selected), applied, pruned (an earlier attempt's gang).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# Pods are only watched (workers, serving and benchmark pods, label-selected): scheduling, readiness,
# failures, results.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# ConfigMaps: rendered runtime configs, progress, results. get and update are not used by the operator
# but the per-job Role grants them to the workers on their progress ConfigMap, and RBAC lets the
# operator grant only what it holds (so it needs neither bind nor escalate).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# The workers' ServiceAccount and their progress Role/RoleBinding, applied (a RoleBinding whose subject
# changed is put right) and pruned (a job that moved to a runtime ServiceAccount has none of its own);
# binding a Role needs no bind verb: the operator holds its rules. Every ServiceAccount of a watched
# namespace is watched: a runtime one the pods run as must exist (ServiceAccountReady) before the
# controllers create pod owners.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["rolebindings"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# kopf posts events (core/v1) on the three kinds.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# Serving children: applied, watched (a hand edit is put back), pruned (a removed canary, an HPA that a
# ScaledObject replaced).
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# The autoscaler when KEDA is absent.
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# Scale from zero: the KEDA HTTP add-on's routing through its interceptor.
- apiGroups: ["http.keda.sh"]
  resources: ["httpscaledobjects"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# The engine pods' scrape targets for the Prometheus Operator, and for Azure Monitor managed
# Prometheus (its add-on's copy of the same kind).
- apiGroups: ["monitoring.coreos.com"]
  resources: ["podmonitors"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["azmonitoring.coreos.com"]
  resources: ["podmonitors"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# Kueue's Workloads of the worker Jobs it manages (spec.queueName): why a gang waits, whether it was
# preempted. Read only.
- apiGroups: ["kueue.x-k8s.io"]
  resources: ["workloads"]
  verbs: ["list", "watch"]
# What a spec may name but the operator never creates: pods are made only once each exists
# (ReferencesReady). Watched into an index of names; never written.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "watch"]
{{- if .Values.operator.checkSecrets }}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list", "watch"]
{{- end }}
{{- end -}}

{{/*
Cluster-scoped reads: kopf lists and watches CRDs to notice resources that appear or go, and the
operator's index of them tells the controllers whether KEDA, Gateway API and Kueue are installed;
APIServices tell whether a custom-metrics adapter serves the fallback HPA's pod metric (read-only).
*/}}
{{- define "modelfleet.detectionRules" -}}
- apiGroups: ["apiregistration.k8s.io"]
  resources: ["apiservices"]
  verbs: ["list", "watch"]
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
# PriorityClasses a TrainingJob names must exist before its workers are made (ReferencesReady).
- apiGroups: ["scheduling.k8s.io"]
  resources: ["priorityclasses"]
  verbs: ["list", "watch"]
{{- end -}}

{{/*
The ClusterTriggerAuthentication of KEDA's prometheus triggers (keda.azureWorkloadIdentity).
*/}}
{{- define "modelfleet.kedaAuthentication" -}}
{{ include "modelfleet.fullname" . }}-azure-monitor
{{- end -}}

{{- define "modelfleet.nodeTerminationHandlerSelectorLabels" -}}
app.kubernetes.io/name: aks-node-termination-handler
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node-termination-handler
{{- end -}}

{{- define "modelfleet.nodeTerminationHandlerLabels" -}}
{{ include "modelfleet.nodeTerminationHandlerSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.training.nodeTerminationHandler.image | splitList ":" | last | quote }}
app.kubernetes.io/part-of: modelfleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "modelfleet.rdmaPluginSelectorLabels" -}}
app.kubernetes.io/name: rdma-shared-device-plugin
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: rdma-device-plugin
{{- end -}}

{{- define "modelfleet.rdmaPluginLabels" -}}
{{ include "modelfleet.rdmaPluginSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.training.rdma.sharedDevicePlugin.image | splitList ":" | last | quote }}
app.kubernetes.io/part-of: modelfleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The VM sizes with InfiniBand (modelfleet_api.instance_types: infiniband); a chart test keeps them equal. */}}
{{- define "modelfleet.infinibandSizes" -}}
- Standard_ND96isr_H100_v5
- Standard_ND96isr_H200_v5
- Standard_ND96asr_v4
- Standard_ND96amsr_A100_v4
{{- end -}}
