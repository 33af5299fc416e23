# The platform on a cluster: cert-manager, Kubeflow Pipelines (standalone), the Kubeflow trainer,
# KServe, Kueue, and the kubeforge chart with its default ClusterQueue and LocalQueue, wired to the
# cluster module's bucket, registry and identities.

locals {
  kfp_manifests = "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=${var.versions.kfp}"
  kubeforge_values = {
    image        = merge({ repository = "${var.image_registry}/kubeforge" }, var.image_tag == "" ? {} : { tag = var.image_tag })
    artifactRoot = var.artifact_root
    serviceAccounts = {
      scheduler = { annotations = lookup(var.service_account_annotations, "scheduler", {}) }
      pipeline  = { annotations = lookup(var.service_account_annotations, "pipeline", {}) }
    }
    postgres    = { existingSecret = var.postgres_secret_name }
    gpu         = { toleration = var.gpu_taint }
    modelServer = { enabled = var.model_server_enabled }
    kueue = {
      enabled = true
      quota   = var.queue_quota
    }
  }
}

resource "kubernetes_namespace" "kubeforge" {
  metadata {
    name = var.namespace
    labels = {
      "app.kubernetes.io/part-of"          = "kubeforge"
      "pod-security.kubernetes.io/enforce" = "restricted"
    }
  }
}

resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = var.versions.cert_manager
  namespace        = "cert-manager"
  create_namespace = true
  atomic           = true

  set {
    name  = "crds.enabled"
    value = "true"
  }
}

# KFP standalone ships as kustomize manifests, not a chart: apply them with kubectl, as upstream documents.
resource "null_resource" "kfp" {
  triggers = {
    version    = var.versions.kfp
    kubeconfig = var.kubeconfig_path
  }

  provisioner "local-exec" {
    command = "kubectl apply -k 'github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=${self.triggers.version}' && kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io && kubectl apply -k '${local.kfp_manifests}'"
    environment = {
      KUBECONFIG = self.triggers.kubeconfig
    }
  }

  provisioner "local-exec" {
    when    = destroy
    command = "kubectl delete --ignore-not-found -k 'github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=${self.triggers.version}'"
    environment = {
      KUBECONFIG = self.triggers.kubeconfig
    }
  }
}

# The KFP UI and API. Standalone KFP authenticates nobody, so by default it stays inside the cluster
# (ClusterIP, reached with `kubectl port-forward`); the opt-in load balancer is internal to the VPC and
# accepts only the given source ranges.
locals {
  kfp_load_balancer = var.kfp_internal_load_balancer.enabled
  kfp_internal_annotations = {
    "service.beta.kubernetes.io/aws-load-balancer-internal" = "true"     # EKS (in-tree controller)
    "service.beta.kubernetes.io/aws-load-balancer-scheme"   = "internal" # EKS (AWS Load Balancer Controller)
    "networking.gke.io/load-balancer-type"                  = "Internal" # GKE
  }
}

resource "kubernetes_service" "kfp_ui" {
  metadata {
    name        = "kubeforge-kfp-ui"
    namespace   = "kubeflow"
    annotations = local.kfp_load_balancer ? local.kfp_internal_annotations : {}
  }
  spec {
    type                        = local.kfp_load_balancer ? "LoadBalancer" : var.kfp_service_type
    load_balancer_source_ranges = local.kfp_load_balancer ? var.kfp_internal_load_balancer.source_ranges : null
    selector                    = { app = "ml-pipeline-ui" }
    port {
      port        = 80
      target_port = 3000
      node_port   = !local.kfp_load_balancer && var.kfp_service_type == "NodePort" ? var.kfp_node_port : null
    }
  }
  depends_on = [null_resource.kfp]
}

locals {
  kfp_ingress = try(kubernetes_service.kfp_ui.status[0].load_balancer[0].ingress[0], { hostname = "", ip = "" })
}

resource "helm_release" "trainer" {
  name             = "kubeflow-trainer"
  repository       = "oci://ghcr.io/kubeflow/charts"
  chart            = "kubeflow-trainer"
  version          = var.versions.trainer
  namespace        = "kubeflow-system"
  create_namespace = true
  atomic           = true
}

resource "helm_release" "kserve_crd" {
  name             = "kserve-crd"
  repository       = "oci://ghcr.io/kserve/charts"
  chart            = "kserve-crd"
  version          = var.versions.kserve
  namespace        = "kserve"
  create_namespace = true
  atomic           = true
}

resource "helm_release" "kserve" {
  name       = "kserve"
  repository = "oci://ghcr.io/kserve/charts"
  chart      = "kserve"
  version    = var.versions.kserve
  namespace  = "kserve"
  atomic     = true

  set {
    name  = "kserve.controller.deploymentMode"
    value = "RawDeployment"
  }

  depends_on = [helm_release.cert_manager, helm_release.kserve_crd]
}

resource "helm_release" "kueue" {
  name             = "kueue"
  repository       = "oci://registry.k8s.io/kueue/charts"
  chart            = "kueue"
  version          = var.versions.kueue
  namespace        = "kueue-system"
  create_namespace = true
  atomic           = true
  depends_on       = [helm_release.cert_manager]
}

resource "helm_release" "kubeforge" {
  name       = "kubeforge"
  chart      = "${path.module}/../../../helm/kubeforge"
  namespace  = kubernetes_namespace.kubeforge.metadata[0].name
  atomic     = true
  values     = [yamlencode(local.kubeforge_values)]
  depends_on = [helm_release.kueue, helm_release.trainer]
}
