"""racam.classifier"""
