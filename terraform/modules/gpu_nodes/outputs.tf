output "site" {
  description = "The shared settings, validated, with defaults filled in and galaxy_server_cidrs the Galaxy server's address (/32) when none were given."
  value       = local.site
}

output "nodes" {
  description = "The validated node specs."
  value       = var.nodes
}

output "instances" {
  description = "The cloud's instance of each node (id, private address), by node name."
  value       = var.instances
}

output "firewall_rules" {
  description = "Ingress rules of the nodes' security group, by \"<name> <cidr>\": name (ssh, slurmd, interactive-tools), description, protocol, from_port, to_port and one source cidr. SSH from ssh_allowed_cidrs, the rest from galaxy_server_cidrs; never the world."
  value       = local.firewall_rules
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
  description = "Ansible inventory (YAML) with the groups site.yml uses, each host's GPU count, each job node's gxnb_internal_address, and the ports the firewall opens (gxnb_slurmd_port, gxnb_session_ports)."
  value       = yamlencode(local.inventory)
}

output "inventory_path" {
  description = "The inventory file apply wrote, for ansible-playbook -i (null when site.inventory_path is null)."
  value       = one(module.inventory_file[*].path)
}

output "gpu_count_total" {
  description = "GPUs over all nodes."
  value       = sum([for n in var.nodes : n.gpu_count])
}
