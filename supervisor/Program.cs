using System.CommandLine;
using Supervisor;
using Supervisor.Cli;
using Supervisor.Logging;

var command = new SupervisorCommand();
var parseResult = command.Root.Parse(args);
if (parseResult.Errors.Count > 0)
{
    return Usage.Fail(parseResult.Errors[0].Message);
}

command.Root.SetAction(async (result, _) =>
{
    Supervisor.Configuration.SupervisorOptions options;
    try
    {
        options = command.Bind(result, Environment.GetEnvironmentVariable);
    }
    catch (UsageException exception)
    {
        return Usage.Fail(exception.Message);
    }

    using var log = SupervisorLogging.Create(options.LogLevel);
    try
    {
        return await SupervisorRun.RunAsync(options, log);
    }
    catch (UsageException exception)
    {
        return Usage.Fail(exception.Message);
    }
    catch (StartupFailureException exception)
    {
        log.Fatal("{Reason}", exception.Message);
        return exception.ExitCode;
    }
    catch (Exception exception)
    {
        log.Fatal(exception, "Supervisor failed: {Reason}", exception.Message);
        return ExitCodes.RuntimeFailure;
    }
});

// The supervisor handles SIGINT/SIGTERM itself; System.CommandLine must not install its own handler.
return await parseResult.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });

namespace Supervisor.Cli
{
    internal static class Usage
    {
        /// <summary>One line on stderr that names the problem and the fix; exit code 2.</summary>
        public static int Fail(string message)
        {
            Console.Error.WriteLine($"supervisor: error: {message.TrimEnd('.')}; see 'supervisor --help'");
            return ExitCodes.UsageError;
        }
    }
}
