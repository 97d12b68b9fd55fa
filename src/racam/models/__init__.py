"""racam.models"""
