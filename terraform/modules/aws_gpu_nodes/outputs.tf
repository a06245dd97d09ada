output "core" {
  description = "The gpu_nodes core module's outputs: inventory_yaml, inventory, inventory_path (the file apply wrote), firewall_rules, instances (id and private address by node name), site, nodes, user_data, gpu_count_total."
  value       = module.core
}

output "security_group_id" {
  description = "Security group of the nodes."
  value       = aws_security_group.node.id
}
