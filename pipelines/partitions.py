"""Partitions of the graph: one dynamic partition per Common Crawl crawl id."""

import dagster as dg

cc_crawl = dg.DynamicPartitionsDefinition(name="cc_crawl")
