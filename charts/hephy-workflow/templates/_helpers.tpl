{{/*
Labels every object carries besides its own `app` label. Pod templates and selectors use only
`app` (and `heritage`), as upstream does, so a chart version bump does not roll pods.
*/}}
{{- define "hephy.labels" -}}
heritage: deis
chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* The platform domain; the render fails without it. */}}
{{- define "hephy.platformDomain" -}}
{{- required "controller.platform_domain is required: the apps' domain, e.g. paas.example.com (the API is served at deis.<platform_domain>)" .Values.controller.platform_domain -}}
{{- end -}}

{{/* Values this chart accepts only in one form. Renders nothing, or fails the render. */}}
{{- define "hephy.validate" -}}
{{- if ne (toString .Values.global.experimental_native_ingress) "true" -}}
{{- fail "global.experimental_native_ingress must be true: this chart implements only Workflow's native-ingress mode (no deis-router)" -}}
{{- end -}}
{{- if not (has .Values.controller.registration_mode (list "admin_only" "disabled")) -}}
{{- fail (printf "controller.registration_mode must be admin_only or disabled, got %q: \"enabled\" lets anyone on the internet register" (toString .Values.controller.registration_mode)) -}}
{{- end -}}
{{- end -}}

{{- /*
The shared Kubernetes client of the chart's in-cluster Python programs (files/lib/kubeclient.py): each
program's code ConfigMap carries it beside the program, which imports it from its own directory.
*/ -}}
{{- define "hephy.kubeclient" -}}
{{ required "files/lib/kubeclient.py is missing or empty" (.Files.Get "files/lib/kubeclient.py") }}
{{- end -}}
