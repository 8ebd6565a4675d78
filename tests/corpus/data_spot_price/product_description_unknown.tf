# a product description EC2 has no Spot price for
# summary: Invalid Value
# at: product_description = "Ubuntu"

data "immutable_spot_price" "x" {
  instance_types      = ["t3.small"]
  product_description = "Ubuntu"
}
