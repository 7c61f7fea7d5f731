using System.Text.Json;
using System.Text.Json.Nodes;

namespace Supervisor.Configuration;

/// <summary>
/// The user's app as given by <c>--app</c>: a framework-dependent <c>.dll</c> run with <c>dotnet</c>, or the
/// app's own executable. Resolving it checks that it is an ASP.NET Core app before anything is started.
/// </summary>
internal sealed record AppTarget(string Path, bool IsDll, bool StartupHooksSupported)
{
    private const string AspNetCoreFramework = "Microsoft.AspNetCore.App";
    private const string Fix = "point it at the app's main .dll (or executable) in its build or publish output";

    /// <summary>The app's folder: its content root, where appsettings.json lives.</summary>
    public string Directory => System.IO.Path.GetDirectoryName(Path)!;

    public string Name => System.IO.Path.GetFileNameWithoutExtension(Path);

    /// <summary>Checks <paramref name="value"/> names a runnable ASP.NET Core app; throws <see cref="SettingValueException"/> with the reason.</summary>
    public static AppTarget Resolve(string value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new SettingValueException($"is empty; {Fix}");
        }
        var path = System.IO.Path.GetFullPath(value);
        if (System.IO.Directory.Exists(path))
        {
            throw new SettingValueException($"'{value}' is a folder; {Fix}");
        }
        if (!File.Exists(path))
        {
            throw new SettingValueException($"'{value}' does not exist; {Fix}");
        }
        EnsureReadable(path, value);

        var isDll = path.EndsWith(".dll", StringComparison.OrdinalIgnoreCase);
        if (!isDll && (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0)
        {
            throw new SettingValueException($"'{value}' is neither a .dll nor executable; {Fix}");
        }

        var runtimeConfigPath = System.IO.Path.ChangeExtension(path, null) + ".runtimeconfig.json";
        if (!File.Exists(runtimeConfigPath))
        {
            if (isDll)
            {
                throw new SettingValueException(
                    $"'{value}' is not a runnable .NET app: {System.IO.Path.GetFileName(runtimeConfigPath)} is missing beside it; {Fix}");
            }
            // A native executable without a runtimeconfig (NativeAOT): it cannot load startup hooks.
            return new AppTarget(path, IsDll: false, StartupHooksSupported: false);
        }

        var runtimeConfig = RuntimeConfig.Read(runtimeConfigPath, value);
        if (!runtimeConfig.UsesFramework(AspNetCoreFramework))
        {
            throw new SettingValueException(
                $"'{value}' is not an ASP.NET Core app: {System.IO.Path.GetFileName(runtimeConfigPath)} names no {AspNetCoreFramework} framework; {Fix}");
        }
        return new AppTarget(path, isDll, runtimeConfig.StartupHooksSupported);
    }

    private static void EnsureReadable(string path, string value)
    {
        try
        {
            using var stream = File.OpenRead(path);
        }
        catch (Exception exception) when (exception is UnauthorizedAccessException or IOException)
        {
            throw new SettingValueException($"'{value}' cannot be read ({exception.Message}); give the supervisor's user read access");
        }
    }

    /// <summary>The parts of <c>App.runtimeconfig.json</c> the supervisor cares about.</summary>
    private sealed record RuntimeConfig(IReadOnlySet<string> Frameworks, bool StartupHooksSupported)
    {
        public bool UsesFramework(string name) => Frameworks.Contains(name);

        public static RuntimeConfig Read(string path, string value)
        {
            JsonNode? root;
            try
            {
                root = JsonNode.Parse(File.ReadAllText(path));
            }
            catch (JsonException exception)
            {
                throw new SettingValueException($"'{value}': {System.IO.Path.GetFileName(path)} is not valid JSON ({exception.Message}); rebuild the app");
            }
            var options = root?["runtimeOptions"];
            var frameworks = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            AddName(options?["framework"]);
            foreach (var listName in new[] { "frameworks", "includedFrameworks" })
            {
                if (options?[listName] is JsonArray list)
                {
                    foreach (var framework in list)
                    {
                        AddName(framework);
                    }
                }
            }
            // Trimmed apps switch startup hooks off; the supervisor then probes the worker's socket instead.
            var hooksSupported = options?["configProperties"]?["System.StartupHookProvider.IsSupported"] is not JsonValue flag
                || !flag.TryGetValue<bool>(out var supported)
                || supported;
            return new RuntimeConfig(frameworks, hooksSupported);

            void AddName(JsonNode? framework)
            {
                if (framework?["name"]?.GetValue<string>() is { } name)
                {
                    frameworks.Add(name);
                }
            }
        }
    }
}
