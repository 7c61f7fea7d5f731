using System.Globalization;
using System.Text.Json;
using Supervisor.Cli;

namespace Supervisor.Configuration;

/// <summary>
/// Reads a JSON config file into text values per setting. Keys are the settings' names, in any of the
/// obvious spellings (<c>max_requests</c>, <c>max-requests</c>, <c>maxRequests</c>) or Gunicorn's own
/// (<c>keepalive</c>, <c>accesslog</c>, <c>raw_env</c>); comments and trailing commas are allowed. A problem is
/// reported with the file, the key and the reason.
/// </summary>
internal static class ConfigFile
{
    private static readonly JsonDocumentOptions Lenient = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    private static readonly Dictionary<string, Setting> ByNormalizedKey = BuildKeyIndex();

    public static Dictionary<Setting, GivenValue> Read(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"config file '{path}' cannot be read ({exception.Message.TrimEnd('.')}); check the path given with --config");
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text, Lenient);
        }
        catch (JsonException exception)
        {
            var where = exception.LineNumber is { } line ? $" at line {line + 1}, column {exception.BytePositionInLine + 1}" : "";
            var python = path.EndsWith(".py", StringComparison.OrdinalIgnoreCase) ? " (Python config files are not read: write the same settings as JSON keys, such as gunicorn's workers = 4 as {\"workers\": 4}; supervisor --print-config shows every key)" : "";
            throw new UsageException($"{path}: not valid JSON{where}{python}; fix the file (a JSON object such as {{\"workers\": 4}})");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new UsageException($"{path}: must hold one JSON object of settings, such as {{\"workers\": 4}}");
            }
            var given = new Dictionary<Setting, GivenValue>();
            var spelledAs = new Dictionary<Setting, string>();
            foreach (var property in document.RootElement.EnumerateObject())
            {
                var where = $"{path}: \"{property.Name}\"";
                var setting = Find(property.Name)
                    ?? throw new UsageException($"{where} is not a setting{Suggestion(property.Name)}; the keys are the long option names of 'supervisor --help'");
                if (!setting.InConfigFile)
                {
                    throw new UsageException($"{where} cannot be set in a config file; give it on the command line");
                }
                if (!spelledAs.TryAdd(setting, property.Name))
                {
                    throw new UsageException($"{where} sets {setting.Key} again (also as \"{spelledAs[setting]}\"); keep one of them");
                }
                if (property.Value.ValueKind == JsonValueKind.Null)
                {
                    continue; // null: the setting keeps its default.
                }
                given[setting] = new GivenValue(Values(property.Value, setting, where), new SettingSource(SourceKind.ConfigFile, where));
            }
            return given;
        }
    }

    /// <summary>A key in any accepted spelling, or null.</summary>
    public static Setting? Find(string key) => ByNormalizedKey.GetValueOrDefault(Normalize(key));

    private static IReadOnlyList<string> Values(JsonElement value, Setting setting, string where)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Array:
                return [.. value.EnumerateArray().Select(item => Scalar(item, where))];
            case JsonValueKind.Object when setting == Settings.Env:
                return [.. value.EnumerateObject().Select(pair => $"{pair.Name}={Scalar(pair.Value, where)}")];
            case JsonValueKind.Object:
                throw new UsageException($"{where} must be a value, not an object");
            default:
                return [Scalar(value, where)];
        }
    }

    private static string Scalar(JsonElement value, string where) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString()!,
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => throw new UsageException($"{where} must be a string, a number or true/false, not {value.ValueKind.ToString().ToLowerInvariant()}"),
    };

    private static string Normalize(string key) =>
        string.Concat(key.Where(c => c is not ('_' or '-'))).ToLowerInvariant();

    private static Dictionary<string, Setting> BuildKeyIndex()
    {
        var index = new Dictionary<string, Setting>(StringComparer.Ordinal);
        foreach (var setting in Settings.All)
        {
            foreach (var name in setting.KeyAliases.Prepend(setting.Key).Concat(setting.Flags.Where(f => f.StartsWith("--", StringComparison.Ordinal))))
            {
                index[Normalize(name)] = setting;
            }
        }
        return index;
    }

    // A likely typo: the setting whose key is within two edits of what was written.
    private static string Suggestion(string key)
    {
        var normalized = Normalize(key);
        var best = ByNormalizedKey
            .Select(entry => (entry.Value.Key, Distance: EditDistance.Between(normalized, entry.Key)))
            .MinBy(candidate => candidate.Distance);
        return best.Distance <= 2 ? string.Create(CultureInfo.InvariantCulture, $" (did you mean \"{best.Key}\"?)") : "";
    }
}
