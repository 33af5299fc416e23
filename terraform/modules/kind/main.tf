# A kind cluster with workers, host port mappings for the KFP UI and the model server, and a
# local registry container on the kind network that every node pulls localhost:PORT images from.

locals {
  registry_name = "${var.name}-registry"
  registry_host = "localhost:${var.registry_port}"
  kfp_node_port = 30080
  model_port    = 30081
}

resource "docker_image" "registry" {
  name         = var.registry_image
  keep_locally = true
}

resource "docker_container" "registry" {
  name    = local.registry_name
  image   = docker_image.registry.image_id
  restart = "always"

  ports {
    internal = 5000
    external = var.registry_port
    ip       = "127.0.0.1"
  }

  networks_advanced {
    name = "kind"
  }

  depends_on = [kind_cluster.this]
}

resource "kind_cluster" "this" {
  name           = var.name
  node_image     = "kindest/node:v${var.kubernetes_version}"
  wait_for_ready = true

  kind_config {
    kind        = "Cluster"
    api_version = "kind.x-k8s.io/v1alpha4"

    containerd_config_patches = [
      <<-TOML
      [plugins."io.containerd.grpc.v1.cri".registry.mirrors."${local.registry_host}"]
        endpoint = ["http://${local.registry_name}:5000"]
      TOML
    ]

    node {
      role = "control-plane"

      extra_port_mappings {
        container_port = local.kfp_node_port
        host_port      = var.kfp_ui_port
        listen_address = "127.0.0.1"
      }

      extra_port_mappings {
        container_port = local.model_port
        host_port      = var.model_server_port
        listen_address = "127.0.0.1"
      }
    }

    dynamic "node" {
      for_each = range(var.workers)
      content {
        role = "worker"
      }
    }
  }
}
