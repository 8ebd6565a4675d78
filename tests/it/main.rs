mod local_aws;
