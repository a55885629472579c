"""One schema module per layer (landing's is precision_marketing.contracts): silver, gold,
activation and ops, imported by the stages that write the tables and by the tests' fixtures."""
