output "nodes" {
  description = "The validated node specs."
  value       = var.nodes
}

output "user_data" {
  description = "cloud-init user data by node name (no secrets: public key and public CA certificates only)."
  value       = local.user_data
}

output "inventory" {
  description = "Ansible inventory as an object."
  value       = local.inventory
}

output "inventory_yaml" {
  description = "Ansible inventory (YAML) with the groups site.yml uses and each host's GPU count."
  value       = yamlencode(local.inventory)
}

output "gpu_count_total" {
  description = "GPUs over all nodes."
  value       = sum([for n in var.nodes : n.gpu_count])
}
