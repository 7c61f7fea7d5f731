using Serilog;
using Serilog.Events;
using Supervisor.Configuration;

namespace Supervisor.Logging;

/// <summary>The supervisor's error log: Gunicorn's line format on stderr.</summary>
internal static class SupervisorLogging
{
    public static Serilog.Core.Logger Create(LogLevelName level) =>
        new LoggerConfiguration()
            .MinimumLevel.Is(level.ToSerilog())
            // Framework chatter (every proxied request, Kestrel's connection events) stays out of the
            // operator's log unless something is wrong.
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .MinimumLevel.Override("Yarp", LogEventLevel.Warning)
            .MinimumLevel.Override("System", LogEventLevel.Warning)
            // The host logs a failed start with a stack trace; the supervisor reports it in one line.
            .MinimumLevel.Override("Microsoft.Extensions.Hosting", LogEventLevel.Fatal)
            // AddReverseProxy brings DataProtection along; the supervisor never protects anything with it.
            .MinimumLevel.Override("Microsoft.AspNetCore.DataProtection", LogEventLevel.Error)
            .WriteTo.Console(new GunicornFormatter(), standardErrorFromLevel: LogEventLevel.Verbose)
            .CreateLogger();
}
