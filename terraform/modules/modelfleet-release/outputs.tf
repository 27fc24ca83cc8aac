output "namespace" {
  description = "Namespace the operator runs in."
  value       = helm_release.modelfleet.namespace
}

output "chart_version" {
  description = "Version of the installed chart."
  value       = helm_release.modelfleet.metadata.version
}
