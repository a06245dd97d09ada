# CLI configuration used by the tests: providers from a local filesystem mirror
# (MIRROR_DIR) when there is one, the registry otherwise.
provider_installation {
  filesystem_mirror {
    path    = "MIRROR_DIR"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/*"]
  }
}
