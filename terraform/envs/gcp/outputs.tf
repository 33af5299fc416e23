output "kubeconfig" {
  description = "Kubeconfig of the GKE cluster (authenticates with gke-gcloud-auth-plugin)."
  value       = local.kubeconfig
  sensitive   = true
}

output "kfp_endpoint" {
  description = "URL of the KFP UI and API: the internal LoadBalancer when enabled, else the local end of kfp_port_forward_command."
  value       = coalesce(module.platform.kfp_load_balancer_endpoint, "http://127.0.0.1:8080")
}

output "kfp_port_forward_command" {
  description = "Command that serves the KFP UI and API on http://127.0.0.1:8080 (run it before using kfp_endpoint)."
  value       = module.platform.kfp_port_forward_command
}

output "artifact_root" {
  description = "Artifact root URI for pipelines (GCS)."
  value       = module.gke.artifact_root
}

output "image_registry" {
  description = "Artifact Registry path for the kubeforge image."
  value       = module.gke.image_registry
}
