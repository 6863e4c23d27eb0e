"""Other engines that run the named queries over the warehouse's table (Spark: `queries.engines.spark`)."""
