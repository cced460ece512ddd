"""Drawing helpers shared by pages (charts, formatting). Pages draw; core computes."""
