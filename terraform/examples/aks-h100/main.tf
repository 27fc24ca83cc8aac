# An AKS cluster for modelfleet: a system pool, H100 pools that scale from zero, KEDA, workload
# identity for the operator and the runtimes, blob storage for datasets/checkpoints/results,
# optional managed Prometheus + Grafana, and the modelfleet chart.
locals {
  tags = merge({ "app.kubernetes.io/part-of" = "modelfleet" }, var.tags)
  # Azure storage account names: 3-24 lowercase letters and digits, globally unique.
  storage_account_name = coalesce(var.storage_account_name, substr(replace("${var.name}data", "-", ""), 0, 24))
}

resource "azurerm_resource_group" "this" {
  name     = "${var.name}-rg"
  location = var.location
  tags     = local.tags
}

module "aks" {
  source = "../../modules/aks"

  name                       = var.name
  location                   = azurerm_resource_group.this.location
  resource_group_name        = azurerm_resource_group.this.name
  kubernetes_version         = var.kubernetes_version
  system_pool                = var.system_pool
  local_account_disabled     = var.local_account_disabled
  admin_group_object_ids     = var.admin_group_object_ids
  managed_prometheus_enabled = var.monitoring_enabled
  tags                       = local.tags
}

module "gpu_pools" {
  source   = "../../modules/gpu-node-pool"
  for_each = { for name, pool in var.gpu_pools : name => pool if pool.enabled }

  name                  = each.key
  kubernetes_cluster_id = module.aks.id
  vm_size               = each.value.vm_size
  max_count             = each.value.max_count
  priority              = each.value.spot ? "Spot" : "Regular"
  spot_max_price        = each.value.spot_max_price
  zones                 = each.value.zones
  tags                  = local.tags
}

module "operator_identity" {
  source = "../../modules/workload-identity"

  name                = "${var.name}-operator"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  oidc_issuer_url     = module.aks.oidc_issuer_url
  service_accounts    = [{ namespace = var.operator_namespace, name = "modelfleet-operator" }]
  tags                = local.tags
}

# The operator reads node pools (VM sizes, spot, counts) to explain why a job cannot be scheduled.
resource "azurerm_role_assignment" "operator_reads_cluster" {
  scope                = module.aks.id
  role_definition_name = "Reader"
  principal_id         = module.operator_identity.principal_id
  principal_type       = "ServicePrincipal"
}

module "runtime_identity" {
  source = "../../modules/workload-identity"

  name                = "${var.name}-runtime"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  oidc_issuer_url     = module.aks.oidc_issuer_url
  service_accounts    = var.runtime_service_accounts
  tags                = local.tags
}

module "storage" {
  source = "../../modules/storage"

  name                = local.storage_account_name
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  data_contributors   = { runtime = module.runtime_identity.principal_id }
  tags                = local.tags
}

module "monitoring" {
  source = "../../modules/monitoring"
  count  = var.monitoring_enabled ? 1 : 0

  name                     = var.name
  location                 = azurerm_resource_group.this.location
  resource_group_name      = azurerm_resource_group.this.name
  kubernetes_cluster_id    = module.aks.id
  grafana_enabled          = var.grafana_enabled
  grafana_admin_object_ids = var.admin_group_object_ids
  tags                     = local.tags
}

# KEDA's operator (the AKS add-on, service account kube-system/keda-operator) reads the engines'
# metrics from the managed workspace as this identity: the chart's ClusterTriggerAuthentication names it.
module "keda_identity" {
  source = "../../modules/workload-identity"
  count  = var.monitoring_enabled ? 1 : 0

  name                = "${var.name}-keda"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  oidc_issuer_url     = module.aks.oidc_issuer_url
  service_accounts    = [{ namespace = "kube-system", name = "keda-operator" }]
  tags                = local.tags
}

resource "azurerm_role_assignment" "keda_reads_metrics" {
  count = var.monitoring_enabled ? 1 : 0

  scope                = module.monitoring[0].monitor_workspace_id
  role_definition_name = "Monitoring Data Reader"
  principal_id         = module.keda_identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

module "modelfleet" {
  source = "../../modules/modelfleet-release"
  count  = var.install_chart ? 1 : 0

  chart                       = var.chart
  chart_version               = var.chart_version
  namespace                   = var.operator_namespace
  operator_client_id          = module.operator_identity.client_id
  runtime_client_id           = module.runtime_identity.client_id
  storage_account_name        = module.storage.name
  managed_prometheus_scraping = var.monitoring_enabled
  prometheus_url              = var.monitoring_enabled ? module.monitoring[0].prometheus_query_endpoint : ""
  keda_identity_client_id     = var.monitoring_enabled ? module.keda_identity[0].client_id : ""
  extra_values                = var.chart_values

  # The GPU pools and identities must exist before the operator starts placing work.
  depends_on = [module.gpu_pools, module.storage]
}
