output "inventory_yaml" {
  description = "Ansible inventory (YAML) for ansible-playbook -i."
  value       = module.core.inventory_yaml
}

output "inventory" {
  description = "Ansible inventory as an object."
  value       = module.core.inventory
}

output "instance_ids" {
  description = "Instance id by node name."
  value       = { for name, i in aws_instance.node : name => i.id }
}

output "security_group_id" {
  description = "Security group of the nodes."
  value       = aws_security_group.node.id
}
