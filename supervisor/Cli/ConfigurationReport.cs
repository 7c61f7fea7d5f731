using System.Text;
using Supervisor.Configuration;

namespace Supervisor.Cli;

/// <summary>
/// <c>--print-config</c>: every setting's effective value and where it came from, written as a config
/// file (JSON, one setting a line, the source in a comment), so the output can be saved and edited.
/// </summary>
internal static class ConfigurationReport
{
    private const int CommentColumn = 56;

    public static string Write(LoadedConfiguration loaded)
    {
        var text = new StringBuilder();
        text.AppendLine($"// supervisor {VersionInfo.Version}: the effective configuration; each comment says where the value came from.");
        text.AppendLine("// This is a valid config file: save it and start with 'supervisor --config FILE'.");
        if (loaded.Options.ConfigFile is { } file)
        {
            text.AppendLine($"// Config file: {file}");
        }
        text.AppendLine("{");
        var entries = loaded.Settings.Where(setting => setting.Setting.InConfigFile).ToList();
        for (var i = 0; i < entries.Count; i++)
        {
            var (setting, value, source) = entries[i];
            var entry = $"  \"{setting.Key}\": {setting.Format(value)}{(i < entries.Count - 1 ? "," : "")}";
            var comment = source.Kind == SourceKind.Default && setting.DefaultOrigin is { } origin ? $"default ({origin})" : source.Where;
            text.Append(entry.PadRight(CommentColumn)).Append(" // ").AppendLine(comment);
        }
        text.AppendLine("}");
        return text.ToString();
    }
}

/// <summary>The supervisor's version, as <c>--version</c> prints it.</summary>
internal static class VersionInfo
{
    public static string Version { get; } = typeof(VersionInfo).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
}
