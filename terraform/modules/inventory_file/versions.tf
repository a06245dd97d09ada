terraform {
  # terraform_data is built in: this module needs no provider.
  required_version = ">= 1.7"
}
