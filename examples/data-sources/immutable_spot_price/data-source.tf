# What Spot costs now for the app's instance types, against On-Demand.
data "immutable_spot_price" "web" {
  instance_types     = ["t3.small", "t3a.small", "m5.large"]
  availability_zones = ["eu-west-1a", "eu-west-1b"]
}

# The cheapest pool: { instance_type = "t3a.small", availability_zone = "eu-west-1b",
#   spot_price = "0.0061", on_demand_price = "0.0204", savings_percent = 70 }
output "cheapest_pool" {
  value = data.immutable_spot_price.web.pools[0]
}

# Per type: "t3.small" = "0.0068 in eu-west-1a, 70% below On-Demand (0.0228)"
output "spot_savings" {
  value = {
    for type, p in data.immutable_spot_price.web.types :
    type => p.savings_percent == null ? "no price" : "${p.cheapest_spot_price} in ${p.cheapest_availability_zone}, ${p.savings_percent}% below On-Demand (${p.on_demand_price})"
  }
}
