# Workload Identity: one Google service account per kubeforge Kubernetes service account, which
# may impersonate it; each can use the artifact bucket and read the image repository.

resource "google_service_account" "workload" {
  for_each     = var.service_accounts
  account_id   = "${var.name}-${each.key}"
  project      = var.project_id
  display_name = "kubeforge ${var.name} ${each.key}"
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each           = var.service_accounts
  service_account_id = google_service_account.workload[each.key].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.namespace}/${each.value}]"
}

resource "google_storage_bucket_iam_member" "workload" {
  for_each = var.service_accounts
  bucket   = google_storage_bucket.artifacts.name
  role     = "roles/storage.objectUser"
  member   = "serviceAccount:${google_service_account.workload[each.key].email}"
}

resource "google_artifact_registry_repository_iam_member" "workload" {
  for_each   = var.service_accounts
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.this.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.workload[each.key].email}"
}
