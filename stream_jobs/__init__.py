"""Flink jobs. One file per job, each exposing `build(t_env, settings, ...)` and `main()`.

    cost_rollup   spans -> priced, deduplicated spans + 1-minute spend rollups
"""
