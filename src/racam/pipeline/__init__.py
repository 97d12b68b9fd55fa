"""racam.pipeline"""
