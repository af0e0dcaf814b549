"""The fleet as one CloudFormation stack (fleet.yaml) and the operator commands around it (fleet/)."""
