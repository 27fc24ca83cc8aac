# Recommended settings for terraform/examples/aks-h100:
#   cd terraform/examples/aks-h100
#   terraform init && terraform apply -var-file=../../../examples/aks.tfvars
# Fill in the subscription and a globally unique storage account name first.
subscription_id = "00000000-0000-0000-0000-000000000000"
name            = "modelfleet"
location        = "eastus2"

# Untainted: AKS add-ons, the operator and benchmark clients.
system_pool = {
  vm_size   = "Standard_D8s_v5"
  min_count = 2
  max_count = 5
}

# Every pool scales from 0 and is tainted sku=gpu:NoSchedule; keep max_count within your H100 quota.
gpu_pools = {
  # 1 x H100 NVL: serving, LoRA fine-tuning, benchmarks.
  nc40h100 = { vm_size = "Standard_NC40adis_H100_v5", max_count = 4 }
  # 2 x H100 NVL on Spot: interruptible training that resumes from checkpoints.
  nc80h100 = { vm_size = "Standard_NC80adis_H100_v5", max_count = 4, spot = true, spot_max_price = -1 }
  # 8 x H100 SXM with InfiniBand: multi-node full fine-tuning; enable once you have ND quota (4 nodes,
  # 384 vCPUs of the NDsr H100 v5 family: what the 70B ZeRO-3 example takes).
  nd96h100 = { vm_size = "Standard_ND96isr_H100_v5", max_count = 4, enabled = false }
}

local_account_disabled = true
admin_group_object_ids = [] # your platform team's Entra ID group

operator_namespace = "modelfleet-system"
# One entry per team namespace whose training/serving pods read and write blob storage.
runtime_service_accounts = [
  { namespace = "ml-team", name = "modelfleet-runtime" },
]
storage_account_name = "modelfleetdata01"

monitoring_enabled = true
grafana_enabled    = true

install_chart = true
chart_values = {
  replicas = 2
}

tags = {
  "cost-center" = "ml-platform"
}
