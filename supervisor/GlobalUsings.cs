// The supervisor logs through Serilog; Microsoft.Extensions.Logging is only the frameworks' side.
global using ILogger = Serilog.ILogger;

// Unix sockets, POSIX signals and statx(2): the supervisor runs on Linux.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
