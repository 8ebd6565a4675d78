# elbv2 endpoint without a host
# summary: Invalid Endpoint URL
# at: elbv2 = "http://"

provider "immutable" {
  endpoints {
    elbv2 = "http://"
  }
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
