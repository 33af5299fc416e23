# The artifact bucket (uniform access, no public access, versioned, CMEK) and the Docker
# repository for the kubeforge image.

resource "google_storage_bucket" "artifacts" {
  #checkov:skip=CKV_GCP_62:Access logs go to Cloud Audit Logs (data access logs), configured per project.
  name                        = "${var.project_id}-${var.name}-artifacts"
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = var.kms_key_name
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 90
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_artifact_registry_repository" "this" {
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name}-images"
  description   = "kubeforge images for ${var.name}"
  format        = "DOCKER"
  kms_key_name  = var.kms_key_name
  labels        = local.labels

  docker_config {
    immutable_tags = true
  }
}
