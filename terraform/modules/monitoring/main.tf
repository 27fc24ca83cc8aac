# Azure Monitor managed Prometheus (an Azure Monitor workspace fed by the cluster's metrics add-on
# through a data collection rule) and Azure Managed Grafana reading it.
resource "azurerm_monitor_workspace" "this" {
  name                = "${var.name}-prometheus"
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_monitor_data_collection_endpoint" "this" {
  name                = "${var.name}-prometheus"
  location            = var.location
  resource_group_name = var.resource_group_name
  kind                = "Linux"
  tags                = var.tags
}

resource "azurerm_monitor_data_collection_rule" "this" {
  name                        = "${var.name}-prometheus"
  location                    = var.location
  resource_group_name         = var.resource_group_name
  data_collection_endpoint_id = azurerm_monitor_data_collection_endpoint.this.id
  kind                        = "Linux"

  destinations {
    monitor_account {
      monitor_account_id = azurerm_monitor_workspace.this.id
      name               = "prometheus"
    }
  }

  data_flow {
    streams      = ["Microsoft-PrometheusMetrics"]
    destinations = ["prometheus"]
  }

  data_sources {
    prometheus_forwarder {
      streams = ["Microsoft-PrometheusMetrics"]
      name    = "PrometheusDataSource"
    }
  }

  tags = var.tags
}

resource "azurerm_monitor_data_collection_rule_association" "this" {
  name                    = "${var.name}-prometheus"
  target_resource_id      = var.kubernetes_cluster_id
  data_collection_rule_id = azurerm_monitor_data_collection_rule.this.id
}

resource "azurerm_dashboard_grafana" "this" {
  count = var.grafana_enabled ? 1 : 0

  name                  = "${var.name}-grafana"
  location              = var.location
  resource_group_name   = var.resource_group_name
  grafana_major_version = var.grafana_major_version

  identity {
    type = "SystemAssigned"
  }

  azure_monitor_workspace_integrations {
    resource_id = azurerm_monitor_workspace.this.id
  }

  tags = var.tags
}

# Grafana queries the workspace with its own identity.
resource "azurerm_role_assignment" "grafana_reads_metrics" {
  count = var.grafana_enabled ? 1 : 0

  scope                = azurerm_monitor_workspace.this.id
  role_definition_name = "Monitoring Data Reader"
  principal_id         = azurerm_dashboard_grafana.this[0].identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "grafana_admins" {
  for_each = var.grafana_enabled ? toset(var.grafana_admin_object_ids) : toset([])

  scope                = azurerm_dashboard_grafana.this[0].id
  role_definition_name = "Grafana Admin"
  principal_id         = each.value
}
