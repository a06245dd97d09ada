output "core" {
  description = "The gpu_nodes core module's outputs: inventory_yaml, inventory, inventory_path (the file apply wrote), firewall_rules, instances (id and address by node name), site, nodes, user_data, gpu_count_total."
  value       = module.core
}
