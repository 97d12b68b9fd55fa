"""racam.evaluation"""
