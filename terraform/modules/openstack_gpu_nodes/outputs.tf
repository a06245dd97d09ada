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
  value       = { for name, i in openstack_compute_instance_v2.node : name => i.id }
}
