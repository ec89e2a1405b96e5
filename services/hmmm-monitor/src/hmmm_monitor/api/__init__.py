"""HTTP routers: they only compose views the ``Monitor`` already builds."""
