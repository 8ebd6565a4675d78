mod accounting;
mod app;
mod corpus;
mod data_ami;
mod layered_ami;
mod local_aws;
mod plugin;
mod reads;
