"""racam.pseudo"""
