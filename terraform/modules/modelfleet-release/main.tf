# Installs the modelfleet chart (operator, RBAC, CRDs, monitoring objects) into the cluster and wires
# it to the Azure identities and storage that Terraform created.
resource "helm_release" "modelfleet" {
  name             = var.release_name
  chart            = var.chart
  version          = var.chart_version
  namespace        = var.namespace
  create_namespace = true
  atomic           = true
  wait             = true
  timeout          = 600

  values = [
    yamlencode({
      serviceAccount = {
        name = var.operator_service_account
      }
      azure = {
        workloadIdentity = {
          operatorClientId = var.operator_client_id
          runtimeClientId  = var.runtime_client_id
        }
        storageAccount = var.storage_account_name
      }
      # Azure Monitor managed Prometheus discovers scrape targets through its own copy of the
      # ServiceMonitor CRD (azmonitoring.coreos.com); its alert rules are Azure rule groups, so the
      # chart's PrometheusRule (for an in-cluster Prometheus Operator) stays off here.
      metrics = {
        serviceMonitor = {
          enabled    = var.managed_prometheus_scraping
          apiVersion = "azmonitoring.coreos.com/v1"
        }
      }
      operator = {
        prometheusUrl = var.prometheus_url
      }
      # KEDA's prometheus triggers authenticate to the managed workspace with workload identity.
      keda = {
        azureWorkloadIdentity = {
          enabled    = var.keda_identity_client_id != ""
          identityId = var.keda_identity_client_id
        }
      }
    }),
    yamlencode(var.extra_values),
  ]
}
