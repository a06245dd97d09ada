output "path" {
  description = "The inventory file, for ansible-playbook -i (known once the file is written)."
  value       = terraform_data.inventory.output.path
}

output "inventory_yaml" {
  description = "The inventory that was written."
  value       = terraform_data.inventory.output.content
}
