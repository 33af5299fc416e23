variable "name" {
  type        = string
  description = "Name of the kind cluster."
  default     = "kubeforge"
}

variable "workers" {
  type        = number
  description = "Worker nodes beside the control plane."
  default     = 2
}

variable "kfp_ui_port" {
  type        = number
  description = "Laptop port of the KFP UI and API."
  default     = 8080
}

variable "model_server_enabled" {
  type        = bool
  description = "Whether the kubeforge chart runs a model server (reachable on port 8081)."
  default     = true
}

variable "artifact_root" {
  type        = string
  description = "Artifact root: the MinIO bucket that KFP standalone installs."
  default     = "s3://mlpipeline/kubeforge"
}
