using System.Collections;
using System.CommandLine;
using Supervisor;
using Supervisor.Cli;
using Supervisor.Configuration;
using Supervisor.Native;

InheritedSignals.TakeBack(); // First: before the runtime's signal handling starts.
FrontRuntimeSettings.Apply();
var command = new SupervisorCommand();
command.Root.SetAction(async (result, _) =>
{
    if (result.GetValue(command.HelpMarkdown))
    {
        Console.Out.Write(OptionsTable.Markdown());
        return ExitCodes.Success;
    }
    var loader = new ConfigurationLoader(command, result, EnvironmentSnapshot());
    LoadedConfiguration loaded;
    try
    {
        loaded = loader.Load();
        if (result.GetValue(command.PrintConfig) || result.GetValue(command.CheckConfig))
        {
            using var checkedStartup = StartupChecks.Run(loaded.Options);
            foreach (var warning in loaded.Warnings.Concat(await StartupChecks.RehearseAsync(loaded.Options)))
            {
                Console.Error.WriteLine($"supervisor: warning: {warning}");
            }
            Console.Out.Write(result.GetValue(command.PrintConfig)
                ? ConfigurationReport.Write(loaded)
                : $"supervisor: the configuration is valid{(loaded.Options.ConfigFile is { } file ? $" ({file})" : "")}\n");
            return ExitCodes.Success;
        }
    }
    catch (UsageException exception)
    {
        return Usage.Fail(exception.Message);
    }
    catch (StartupFailureException exception)
    {
        return Usage.Fail(exception);
    }
    return await SupervisorRun.RunAsync(loaded, loader);
});

command.Status.Command.SetAction((result, _) => SupervisorClient.StatusAsync(
    result.GetValue(command.Status.SocketDirectory), result.GetValue(command.Status.Pidfile), result.GetValue(command.Status.Json)));
command.Reload.Command.SetAction((result, _) =>
{
    var seconds = result.GetValue(command.Reload.WaitTimeout);
    return seconds > 0
        ? SupervisorClient.ReloadAsync(result.GetValue(command.Reload.SocketDirectory), result.GetValue(command.Reload.Pidfile), result.GetValue(command.Reload.Wait), TimeSpan.FromSeconds(seconds))
        : Task.FromResult(Usage.Fail($"--wait-timeout {seconds}: give a number of seconds above 0"));
});

var parseResult = command.Parse(args);
if (parseResult.Errors.Count > 0)
{
    return Usage.Fail(CommandLineHints.Explain(parseResult));
}

// The supervisor handles SIGINT/SIGTERM itself; System.CommandLine must not install its own handler.
return await parseResult.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });

// Read once: a reload re-reads the config file, but the supervisor's own environment cannot change.
static Dictionary<string, string> EnvironmentSnapshot() =>
    Environment.GetEnvironmentVariables().Cast<DictionaryEntry>()
        .ToDictionary(entry => (string)entry.Key, entry => (string?)entry.Value ?? "", StringComparer.Ordinal);

namespace Supervisor.Cli
{
    internal static class Usage
    {
        /// <summary>One line on stderr that names the problem and the fix; exit code 2.</summary>
        public static int Fail(string message) => Fail(message, ExitCodes.UsageError);

        /// <summary>One line on stderr for a failure found before the error log is open; its own exit code.</summary>
        public static int Fail(StartupFailureException exception) => Fail(exception.Message, exception.ExitCode);

        private static int Fail(string message, int exitCode)
        {
            Console.Error.WriteLine($"supervisor: error: {message.TrimEnd('.')}");
            return exitCode;
        }
    }
}
