output "cluster_name" {
  description = "Name of the GKE cluster."
  value       = google_container_cluster.this.name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = "https://${google_container_cluster.this.endpoint}"
}

output "cluster_ca_certificate" {
  description = "Base64-encoded CA certificate of the Kubernetes API server."
  value       = google_container_cluster.this.master_auth[0].cluster_ca_certificate
}

output "gpu_taint" {
  description = "Taint on the GPU nodes, in Kubernetes form, for tolerations of GPU jobs."
  value       = { key = local.gpu_taint.key, value = local.gpu_taint.value, effect = "NoSchedule" }
}

output "artifact_bucket" {
  description = "Name of the GCS artifact bucket."
  value       = google_storage_bucket.artifacts.name
}

output "artifact_root" {
  description = "Artifact root URI for kubeforge pipelines (gs://BUCKET/pipelines)."
  value       = "gs://${google_storage_bucket.artifacts.name}/pipelines"
}

output "image_registry" {
  description = "Docker registry path of the Artifact Registry repository."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.this.repository_id}"
}

output "service_account_annotations" {
  description = "Annotations per service-account purpose (pipeline, scheduler) binding it to its Google service account."
  value       = { for purpose, account in google_service_account.workload : purpose => { "iam.gke.io/gcp-service-account" = account.email } }
}
