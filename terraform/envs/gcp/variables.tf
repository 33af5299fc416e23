variable "name" {
  type        = string
  description = "Name of the cluster and prefix of its resources."
  default     = "kubeforge"
}

variable "project_id" {
  type        = string
  description = "GCP project for the cluster."
}

variable "region" {
  type        = string
  description = "GCP region of the cluster."
  default     = "europe-west4"
}

variable "kms_key_name" {
  type        = string
  description = "Cloud KMS key that encrypts the bucket, images and etcd secrets."
}

variable "master_authorized_cidrs" {
  type        = map(string)
  description = "Networks allowed to reach the control plane: display name to CIDR."
  default     = {}
}

variable "model_server_enabled" {
  type        = bool
  description = "Whether the kubeforge chart runs a model server."
  default     = false
}

variable "kfp_internal_load_balancer" {
  type        = object({ enabled = bool, source_ranges = list(string) })
  description = "Opt-in: the KFP UI on an internal LoadBalancer that accepts only source_ranges; by default it is ClusterIP (see the kfp_port_forward_command output)."
  default     = { enabled = false, source_ranges = [] }
}

variable "kfp_auth_proxy" {
  type = object({
    enabled            = bool
    oidc_issuer_url    = string
    client_secret_name = string
    tls_secret_name    = string
    email_domains      = list(string)
  })
  description = "Opt-in: oauth2-proxy (OIDC, HTTPS) in front of the KFP UI; see the platform module."
  default     = { enabled = false, oidc_issuer_url = "", client_secret_name = "", tls_secret_name = "", email_domains = [] }
}
