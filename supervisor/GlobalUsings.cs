// The supervisor logs through Serilog; Microsoft.Extensions.Logging is only the frameworks' side.
global using ILogger = Serilog.ILogger;
