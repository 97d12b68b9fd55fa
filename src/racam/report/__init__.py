"""racam.report"""
