output "core" {
  description = "The gpu_nodes core module's outputs: inventory_yaml, inventory, inventory_path (the file apply wrote), firewall_rules, instances (id and private address by node name), site, nodes, user_data, gpu_count_total."
  value       = module.core
}

output "security_group_id" {
  description = "Security group of the nodes."
  value       = aws_security_group.node.id
}

output "launch_template_id" {
  description = "The launch template of the nodes made on demand (null when none is): gxnb-nodes' aws driver makes them from it; the inventory carries it in gxnb_node_driver_settings."
  value       = one(aws_launch_template.on_demand[*].id)
}

output "controller_policy_arn" {
  description = "The IAM policy the Slurm controller's instance role needs for gxnb-nodes (null without nodes made on demand): launch from the template, terminate this cluster's nodes, store the munge key."
  value       = one(aws_iam_policy.controller[*].arn)
}

output "munge_key_secret_arn" {
  description = "The Secrets Manager secret the nodes made on demand read the munge key from (null without such nodes); site.yml stores the key, Terraform never holds it."
  value       = one(aws_secretsmanager_secret.munge_key[*].arn)
}
