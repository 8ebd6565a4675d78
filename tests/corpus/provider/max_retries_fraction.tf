# max_retries that is not a whole number
# summary: Value Out Of Range
# at: max_retries = 2.5

provider "immutable" {
  max_retries = 2.5
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
