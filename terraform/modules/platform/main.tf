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
  kfp_auth_proxy    = var.kfp_auth_proxy.enabled
  kfp_load_balancer = var.kfp_internal_load_balancer.enabled && !local.kfp_auth_proxy
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

# Opt-in: OIDC login (oauth2-proxy) in front of the UI, over HTTPS with the operator's certificate; the
# internal load balancer, when enabled, then publishes the proxy and never the UI itself.
resource "helm_release" "kfp_auth_proxy" {
  count      = local.kfp_auth_proxy ? 1 : 0
  name       = "kfp-auth-proxy"
  repository = "https://oauth2-proxy.github.io/manifests"
  chart      = "oauth2-proxy"
  version    = var.versions.oauth2_proxy
  namespace  = "kubeflow"
  atomic     = true
  values = [yamlencode({
    config     = { existingSecret = var.kfp_auth_proxy.client_secret_name }
    httpScheme = "https"
    extraArgs = {
      provider             = "oidc"
      oidc-issuer-url      = var.kfp_auth_proxy.oidc_issuer_url
      email-domain         = join(",", var.kfp_auth_proxy.email_domains)
      upstream             = "http://${kubernetes_service.kfp_ui.metadata[0].name}.kubeflow.svc.cluster.local:80"
      tls-cert-file        = "/etc/kfp-auth-proxy/tls/tls.crt"
      tls-key-file         = "/etc/kfp-auth-proxy/tls/tls.key"
      cookie-secure        = "true"
      skip-provider-button = "true"
    }
    extraVolumes      = [{ name = "tls", secret = { secretName = var.kfp_auth_proxy.tls_secret_name } }]
    extraVolumeMounts = [{ name = "tls", mountPath = "/etc/kfp-auth-proxy/tls", readOnly = true }]
    service = merge(
      { portNumber = 443 },
      var.kfp_internal_load_balancer.enabled ? {
        type                     = "LoadBalancer"
        annotations              = local.kfp_internal_annotations
        loadBalancerSourceRanges = var.kfp_internal_load_balancer.source_ranges
      } : { type = "ClusterIP" }
    )
  })]
  depends_on = [kubernetes_service.kfp_ui]
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
