variable "name" {
  type        = string
  description = "Name of the cluster; prefixes every resource this module creates."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}[a-z0-9]$", var.name))
    error_message = "The name must be 3 to 22 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "project_id" {
  type        = string
  description = "GCP project that holds the cluster, bucket and repository."
}

variable "region" {
  type        = string
  description = "GCP region of the regional cluster, bucket and repository, for example europe-west4."
}

variable "release_channel" {
  type        = string
  description = "GKE release channel that picks and upgrades the Kubernetes version."
  default     = "REGULAR"

  validation {
    condition     = contains(["RAPID", "REGULAR", "STABLE"], var.release_channel)
    error_message = "The release_channel must be one of: RAPID, REGULAR, STABLE."
  }
}

variable "subnet_cidr" {
  type        = string
  description = "Primary range of the cluster subnet (nodes)."
  default     = "10.50.0.0/20"

  validation {
    condition     = can(cidrnetmask(var.subnet_cidr))
    error_message = "The subnet_cidr must be an IPv4 CIDR block such as 10.50.0.0/20."
  }
}

variable "pods_cidr" {
  type        = string
  description = "Secondary range for pods (VPC-native)."
  default     = "10.64.0.0/14"

  validation {
    condition     = can(cidrnetmask(var.pods_cidr))
    error_message = "The pods_cidr must be an IPv4 CIDR block such as 10.64.0.0/14."
  }
}

variable "services_cidr" {
  type        = string
  description = "Secondary range for services (VPC-native)."
  default     = "10.68.0.0/20"

  validation {
    condition     = can(cidrnetmask(var.services_cidr))
    error_message = "The services_cidr must be an IPv4 CIDR block such as 10.68.0.0/20."
  }
}

variable "master_cidr" {
  type        = string
  description = "/28 range of the private control plane."
  default     = "172.16.0.0/28"

  validation {
    condition     = can(cidrnetmask(var.master_cidr)) && can(regex("/28$", var.master_cidr))
    error_message = "The master_cidr must be a /28 range such as 172.16.0.0/28."
  }
}

variable "master_authorized_cidrs" {
  type        = map(string)
  description = "Networks allowed to reach the control plane: display name to CIDR."
  default     = {}

  validation {
    condition     = alltrue([for cidr in values(var.master_authorized_cidrs) : can(cidrnetmask(cidr))])
    error_message = "Every master_authorized_cidrs value must be an IPv4 CIDR block such as 203.0.113.0/24."
  }
}

variable "cpu_machine_type" {
  type        = string
  description = "Machine type of the general-purpose node pool."
  default     = "e2-standard-4"
}

variable "cpu_node_count" {
  type        = object({ min = number, max = number })
  description = "Autoscaling bounds per zone of the general-purpose node pool."
  default     = { min = 1, max = 5 }

  validation {
    condition     = var.cpu_node_count.min >= 1 && var.cpu_node_count.min <= var.cpu_node_count.max
    error_message = "The cpu_node_count must satisfy 1 <= min <= max."
  }
}

variable "gpu_machine_type" {
  type        = string
  description = "Machine type of the GPU node pool."
  default     = "g2-standard-8"
}

variable "gpu_type" {
  type        = string
  description = "Accelerator type attached to each GPU node."
  default     = "nvidia-l4"

  validation {
    condition     = contains(["nvidia-l4", "nvidia-tesla-t4", "nvidia-tesla-a100", "nvidia-a100-80gb", "nvidia-h100-80gb"], var.gpu_type)
    error_message = "The gpu_type must be one of: nvidia-l4, nvidia-tesla-t4, nvidia-tesla-a100, nvidia-a100-80gb, nvidia-h100-80gb."
  }
}

variable "gpu_node_count" {
  type        = object({ min = number, max = number })
  description = "Autoscaling bounds per zone of the GPU node pool (min 0 scales to zero)."
  default     = { min = 0, max = 2 }

  validation {
    condition     = var.gpu_node_count.min >= 0 && var.gpu_node_count.min <= var.gpu_node_count.max && var.gpu_node_count.max >= 1
    error_message = "The gpu_node_count must satisfy 0 <= min <= max and max >= 1."
  }
}

variable "namespace" {
  type        = string
  description = "Kubernetes namespace of the kubeforge service accounts bound through Workload Identity."
  default     = "kubeforge"
}

variable "service_accounts" {
  type        = map(string)
  description = "Workload Identity bindings to create: purpose (pipeline, scheduler) to Kubernetes service account name."
  default     = { pipeline = "kubeforge-pipeline", scheduler = "kubeforge-scheduler" }
}

variable "kms_key_name" {
  type        = string
  description = "Cloud KMS key (projects/.../cryptoKeys/...) that encrypts the bucket, the images and etcd secrets."
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every resource that takes labels."
  default     = {}
}
