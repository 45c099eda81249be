"""The HTTP API's edges: one module of routes per domain, each a thin layer over its services.

An endpoint reads the request, opens its transactions (`billplane.http.Tx`), calls services and
renders their answer; it holds no rules of its own. Nothing imports from here but `billplane.app`.
"""
